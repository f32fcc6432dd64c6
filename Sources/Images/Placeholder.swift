public enum ImagesPlaceholder {}
