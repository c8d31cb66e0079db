"""livecommerce."""
