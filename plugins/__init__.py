"""faderkit's built-in plugins; each subpackage registers through the faderkit entry-point group."""
