"""Key performance indicators: catalogues, methods, computation."""
