//! End-to-end tests of the connector, across its processes: the test
//! binaries are under `tests/tests/`, their shared harness under
//! `tests/support/`. This library is empty: everything the tests use is a
//! dev-dependency, so no crate of the product depends on the worker, the
//! console or ingest.
