"""dothi: an open smart-city platform for Vietnamese cities, built on NGSI-LD."""

__version__ = "0.1.0"
