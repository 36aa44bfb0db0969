"""What runs the library from outside: the bundled jobs' harness and the ``spark-flows`` command line."""
