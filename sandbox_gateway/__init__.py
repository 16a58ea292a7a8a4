"""A stand-in for the VNPay gateway that ships with motcua, so that level 4 runs offline (``make run``)."""
