public enum CgroupsPlaceholder {}
