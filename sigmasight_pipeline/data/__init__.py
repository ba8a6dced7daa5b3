"""Package data: demo books, factor definitions, stress scenarios, security master, report schema."""
