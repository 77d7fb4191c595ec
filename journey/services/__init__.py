"""Use cases that span the event store and the projections (status, overviews).
Each takes its adapters as arguments; the command line passes those the composition
root (``journey.bootstrap``) built."""
