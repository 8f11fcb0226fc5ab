package nats

// Headers of commands, replies and dead letters; public API for non-Go
// clients.
const (
	HeaderMsgID     = "Nats-Msg-Id"
	HeaderCommandID = "Ordo-Command-Id"
	// HeaderCommandIDFresh "true" says the sender minted the command ID for
	// this command (it was never used before); see ledger.go.
	HeaderCommandIDFresh = "Ordo-Command-Id-Fresh"
	HeaderCommandType    = "Ordo-Command-Type"
	HeaderCorrelationID  = "Ordo-Correlation-Id"
	HeaderCausationID    = "Ordo-Causation-Id"
	HeaderReplyTo        = "Ordo-Reply-To"
	HeaderStatus         = "Ordo-Status"      // on replies: 200, or the error's status number
	HeaderDeadReason     = "Ordo-Dead-Reason" // on dead letters
	HeaderDeadCode       = "Ordo-Dead-Code"
)
