package graph

// KeptBodyBuffers is how many buffers of large bodies e keeps for the next
// ones (body.go).
func KeptBodyBuffers(e *Endpoint) int {
	e.bodyBufs.mu.Lock()
	defer e.bodyBufs.mu.Unlock()
	return len(e.bodyBufs.free)
}
