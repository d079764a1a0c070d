package graph

// DirectFrames is how many data messages subscriptions that have ended
// wrote in gqlgen's form themselves (wsConn.writeNext).
func DirectFrames() int64 { return directFrames.Load() }
