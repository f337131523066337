package jobqueue

// Delivery is what the queue trigger tells a worker about one delivery of a
// job message, beside the message itself. The edge fills it from the
// host's invocation payload, so the services never see the payload's shape.
//
// It lives here until internal/job (the shared job lifecycle) takes it over.
type Delivery struct {
	// MessageID is the queue's message id, for logs.
	MessageID string
	// DequeueCount is 1 on the first delivery; the host moves the message
	// to the poison queue after host.json's maxDequeueCount.
	DequeueCount int
}
