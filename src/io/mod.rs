//! Socket side: listener, acceptor, stream.
