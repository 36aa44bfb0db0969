"""The book's demo domain: its datasets, the sample generator and the transformations the bundled jobs and the
demo use. Not part of the library's API."""
