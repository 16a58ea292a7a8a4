"""A stand-in for the VNPay gateway that ships with motcua, so that level 4 runs offline (``make run``).

It plays the bank at VNPay's own paths under ``/sandbox/vnpay`` (``views``): the payment page with four
outcomes, the signed IPN to the merchant and the redirect to its return URL, and the ``querydr`` API.  It
speaks the same protocol as the real gateway (``payments.vnpay_protocol``) and keeps its own books in
``sandbox_transactions``.
"""
