from .core import ber, db, evm_db, nmse, nmse_db

__all__ = ["ber", "db", "evm_db", "nmse", "nmse_db"]
