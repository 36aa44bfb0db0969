"""The book's data flow patterns: sequence, split, choice, markers (Isolated Sequencer), fan-in, runners and
streaming. Imports ``flow`` and below; the public names are re-exported by ``spark_flows``."""
