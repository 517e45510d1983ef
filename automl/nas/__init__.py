"""Architecture search: the DDPNAS distribution, strategies and the one search loop."""
