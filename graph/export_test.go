package graph

// DirectFrames is how many data messages subscriptions wrote in gqlgen's
// form themselves (wsConn.writeNext).
func DirectFrames() int64 { return directFrames.Load() }
