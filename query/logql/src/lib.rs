//! LogQL: the parser for Loki's query language and the label matching that queries, pipelines
//! and alerts share.
