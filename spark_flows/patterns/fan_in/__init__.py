"""Aligned and Unaligned Fan-In: parents read in one scan, schemas aligned, completeness published, trigger rules
and partial results announced."""
