"""Transaction tables: the schema, reading files and sources, splits and class
weights. Keras-free."""
