public enum ContainersPlaceholder {}
