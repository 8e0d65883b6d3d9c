"""A small project for the ChannelLiveServerTestCase tests: views and consumers reading ``auth.User``."""
