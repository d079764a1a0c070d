package eventstore

// SetInsertChunkDocs makes the store's own insert commands (insertcmd.go)
// hold at most n documents each, until the returned func restores it.
func SetInsertChunkDocs(n int) (restore func()) {
	old := insertChunkDocs
	insertChunkDocs = n
	return func() { insertChunkDocs = old }
}
