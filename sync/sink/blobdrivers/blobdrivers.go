// Package blobdrivers registers the cloud drivers of gocloud.dev/blob
// (s3://, gs://, azblob://) for the PostgreSQL sink's blob store
// (NOTIONSYNC_BLOB_URL). Import it for its side effect in a binary that
// opens such URLs; package pgsink itself registers only file://, so that
// tests and tools do not link the cloud SDKs.
package blobdrivers

import (
	_ "gocloud.dev/blob/azureblob" // azblob://container
	_ "gocloud.dev/blob/gcsblob"   // gs://bucket
	_ "gocloud.dev/blob/s3blob"    // s3://bucket?region=...
)
