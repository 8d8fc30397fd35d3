"""The payments service: deposits and withdrawals through payment service providers."""
