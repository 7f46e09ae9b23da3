"""The application's services, shared by every adapter (REST, the hot path, Socket.IO):
identity, the catalogue directory, the seat and order rules, and order fulfilment.
"""
