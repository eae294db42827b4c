import TapioAgent
import TapioModel
import Testing

@Suite(.timeLimit(.minutes(2))) struct EffectiveConfigTests {
    @Test func noPolicyMeansDefaults() {
        let c = EffectiveConfig.merge([])
        #expect(c.samplingHz == 19 && c.memoryProbe && c.networkProbe)
        #expect(c.correlation.batchSize == 100 && c.correlation.window == .seconds(300))
    }

    @Test func theMostObservantSettingWins() {
        var a = TapioPolicySpec()
        a.probes.memory.samplingHz = 49
        a.probes.network.enabled = false
        a.correlation.window = "10m"
        a.correlation.batchSize = 500
        var b = TapioPolicySpec()
        b.probes.memory.samplingHz = 7
        b.probes.network.enabled = false
        b.probes.memory.leakThreshold = "1Mi"
        b.correlation.minSeverity = .warning
        let c = EffectiveConfig.merge([TapioPolicy(name: "a", spec: a), TapioPolicy(name: "b", spec: b)])
        #expect(c.samplingHz == 49)
        #expect(!c.networkProbe, "no policy enables the network probe")
        #expect(c.correlation.window == .seconds(600))
        #expect(c.correlation.batchSize == 100)
        #expect(c.correlation.leakThresholdBytesPerHour == 1_048_576)
        #expect(c.correlation.minSeverity == .info)
        #expect(Set(c.appliedPolicies.keys) == ["a", "b"])
    }
}
