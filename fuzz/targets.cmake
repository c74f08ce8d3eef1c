# One line per fuzz target; the owning layer's library provides the code.
