"""Questions asked of a book: what-if trades and ad-hoc stress, computed in memory by the engines' own functions;
nothing is stored."""
