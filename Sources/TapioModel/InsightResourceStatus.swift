/// `Insight.status`: lifecycle and remediation state, written by Tapio through the status subresource.
public struct InsightStatus: Sendable, Hashable, Codable {
    public var phase: InsightPhase
    /// RFC 3339: first and latest time the condition was seen.
    public var firstSeen: String?
    public var lastSeen: String?
    /// How many times the condition was seen (updates of one Insight, not duplicates).
    public var occurrences: Int
    public var remediation: RemediationStatus?

    public init(phase: InsightPhase = .active, firstSeen: String? = nil, lastSeen: String? = nil, occurrences: Int = 1,
                remediation: RemediationStatus? = nil) {
        self.phase = phase
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.occurrences = occurrences
        self.remediation = remediation
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        phase = try c.decodeIfPresent(InsightPhase.self, forKey: .phase) ?? .active
        firstSeen = try c.decodeIfPresent(String.self, forKey: .firstSeen)
        lastSeen = try c.decodeIfPresent(String.self, forKey: .lastSeen)
        occurrences = try c.decodeIfPresent(Int.self, forKey: .occurrences) ?? 1
        remediation = try c.decodeIfPresent(RemediationStatus.self, forKey: .remediation)
    }
}

public enum InsightPhase: String, Sendable, Hashable, Codable, CaseIterable {
    /// The condition is present (or predicted).
    case active = "Active"
    /// The condition has been clear for the policy's `resolveAfter`.
    case resolved = "Resolved"
    /// Tapio applied a remediation and the condition cleared.
    case remediated = "Remediated"
}

public struct RemediationStatus: Sendable, Hashable, Codable {
    public var state: RemediationState
    /// Oldest first; capped at `maxHistory` entries (oldest dropped).
    public var history: [RemediationHistoryEntry]
    /// The change to commit to Git, when the operator proposes instead of patching.
    public var proposal: RemediationProposal?

    public static let maxHistory = 20

    public init(state: RemediationState = .none, history: [RemediationHistoryEntry] = [], proposal: RemediationProposal? = nil) {
        self.state = state
        self.history = history
        self.proposal = proposal
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        state = try c.decodeIfPresent(RemediationState.self, forKey: .state) ?? .none
        history = try c.decodeIfPresent([RemediationHistoryEntry].self, forKey: .history) ?? []
        proposal = try c.decodeIfPresent(RemediationProposal.self, forKey: .proposal)
    }

    /// Appends an entry, dropping the oldest beyond `maxHistory`.
    public mutating func record(_ e: RemediationHistoryEntry) {
        history.append(e)
        if history.count > Self.maxHistory { history.removeFirst(history.count - Self.maxHistory) }
    }
}

public enum RemediationState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Nothing attempted (mode Off or Suggest, or no applicable action).
    case none = "None"
    /// Waiting for `tapio.io/approve: "true"`.
    case awaitingApproval = "AwaitingApproval"
    /// A gate stopped it (see the last history entry's `gate` and `reason`).
    case blocked = "Blocked"
    /// The dry-run patch was accepted by the API server.
    case dryRunSucceeded = "DryRunSucceeded"
    /// The change is in `proposal`, to be committed to Git (mode Propose, or gate ManagedByGitOps in Apply).
    case proposed = "Proposed"
    case applied = "Applied"
    case failed = "Failed"
}

public enum RemediationOutcome: String, Sendable, Hashable, Codable, CaseIterable {
    case blocked = "Blocked"
    case dryRunSucceeded = "DryRunSucceeded"
    case dryRunFailed = "DryRunFailed"
    case proposed = "Proposed"
    case applied = "Applied"
    case failed = "Failed"
}

/// One remediation attempt or decision.
public struct RemediationHistoryEntry: Sendable, Hashable, Codable {
    /// RFC 3339.
    public var time: String
    /// A `RemediationActionName` raw value.
    public var action: String
    public var outcome: RemediationOutcome
    /// The gate that decided a `Blocked` outcome: `Mode`, `Target`, `PolicyNotAccepted`, `AllowedActions`,
    /// `Namespace`, `Approval`, `MemoryCeiling`, `RateLimit`.
    public var gate: String?
    /// For `Applied`: the policies whose hourly budget it counts against (the budget is rebuilt from these).
    public var policies: [String]?
    /// CamelCase machine-readable reason.
    public var reason: String?
    /// What happened, for a person.
    public var message: String

    public init(time: String, action: String, outcome: RemediationOutcome, gate: String? = nil, policies: [String]? = nil,
                reason: String? = nil, message: String) {
        self.time = time
        self.action = action
        self.outcome = outcome
        self.gate = gate
        self.policies = policies
        self.reason = reason
        self.message = message
    }
}

/// A remediation as a change to commit to Git: a kustomize patch of the workload, where it might go, and how to
/// apply it.
public struct RemediationProposal: Sendable, Hashable, Codable {
    /// The action it carries out (a `RemediationActionName` raw value).
    public var action: String
    /// A suggested path for the patch file in the repository that holds the workload's kustomization.
    public var path: String
    /// The patch: the workload's apiVersion, kind, name and namespace with the change (JSON, which is YAML).
    public var patch: String
    /// The commands that add it to the kustomization and check the result.
    public var commands: [String]

    public init(action: String, path: String, patch: String, commands: [String]) {
        self.action = action
        self.path = path
        self.patch = patch
        self.commands = commands
    }
    /// `commands` is optional in the CRD: a proposal without them still says what to change and where.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        action = try c.decode(String.self, forKey: .action)
        path = try c.decode(String.self, forKey: .path)
        patch = try c.decode(String.self, forKey: .patch)
        commands = try c.decodeIfPresent([String].self, forKey: .commands) ?? []
    }
}
