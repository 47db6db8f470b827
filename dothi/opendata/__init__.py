"""Open data: the data catalogue (DCAT-AP), the portal and the downloads."""
