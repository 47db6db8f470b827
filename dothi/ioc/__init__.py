"""The operations centre (IOC): incidents and their workflow (rules, warnings and the
dashboard build on them)."""
