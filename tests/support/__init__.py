"""Code the tests share. Test modules import from here, never from each other or from conftest
(tests/test_suite_imports.py checks it): paths of the data folders, the conformance gate, packet
builders, bytecode builders and engine harnesses."""
