"""The chat example's Django project: settings, URLs and channel routing."""
