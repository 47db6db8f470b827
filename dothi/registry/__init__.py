"""The registers of Decree 269/2025: urban plans and projects, smart buildings and
smart urban areas, controlled-testing zones."""
