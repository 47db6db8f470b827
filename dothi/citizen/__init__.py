"""What citizens use: field reports (Open311), and the pages they read."""
