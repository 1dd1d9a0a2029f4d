"""Adversarial tests, one per closed hole (SECURITY.md); ci/asan.sh runs them under ASan."""
