public enum LinuxSysPlaceholder {}
