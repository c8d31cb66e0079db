"""flash_sale job."""
