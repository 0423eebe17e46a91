"""The model: ``FraudMLP``, its weighted loss and one train step per backend.
Keras starts here (this package's ``__init__`` stays Keras-free)."""
