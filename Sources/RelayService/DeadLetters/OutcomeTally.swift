/// Running counts for progress: counting the outcomes so far at every step was quadratic, minutes at
/// an incident's 20,000.
struct OutcomeTally {
    var succeeded = 0
    var failed = 0

    mutating func add(_ outcome: DeadLetterOutcome) {
        if outcome.isSuccess || outcome.isWouldBe { succeeded += 1 }
        if outcome.isFailure { failed += 1 }
    }
}
