DROP TABLE evidence;
DROP TABLE evidence_blob_chunks;
DROP TABLE evidence_blobs;
