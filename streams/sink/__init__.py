"""sink job."""
