package main

import (
	"net/http"

	sse "github.com/tmaxmax/go-sse"
)

// eventSink takes a stream's events, each one JSON object.
type eventSink interface {
	sendEvent(raw []byte) error
}

// openEvents starts the event stream of a response: Server-Sent Events
// over HTTP, or the serial transport's frames when w is one of its
// responses (serial.go).
func openEvents(w http.ResponseWriter, r *http.Request) (eventSink, error) {
	if fs, ok := w.(eventSink); ok {
		return fs, nil
	}
	sess, err := sse.Upgrade(w, r)
	if err != nil {
		return nil, err
	}
	return sseSink{sess}, nil
}

type sseSink struct{ sess *sse.Session }

func (s sseSink) sendEvent(raw []byte) error {
	msg := &sse.Message{}
	msg.AppendData(string(raw))
	if err := s.sess.Send(msg); err != nil {
		return err
	}
	return s.sess.Flush()
}
