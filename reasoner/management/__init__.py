"""Management commands of the reasoner."""
