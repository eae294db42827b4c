import Testing
@testable import TapioCorrelation

/// ``RobustTrend/median(_:)`` selects instead of sorting (Theil–Sen takes the median of up to 1,770 slopes at every
/// evaluation of a long climb); it must give exactly what a sort gives.
@Suite("Median by selection")
struct MedianTests {
    static func sorted(_ a: [Double]) -> Double {
        let s = a.sorted(), m = s.count / 2
        return s.count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2
    }

    @Test("equals the sorted median on random, repeated, ordered and reversed values of every length up to 200")
    func equalsTheSortedMedian() {
        var noise = TestNoise(state: 0x2545_F491_4F6C_DD1D)
        var mismatches: [String] = []
        for n in 1...200 {
            let random = (0..<n).map { _ in noise.gauss() * 1e6 }
            let repeated = (0..<n).map { _ in Double(Int(noise.next() * 4)) }
            let ordered = (0..<n).map(Double.init)
            for (name, values) in [("random", random), ("repeated", repeated), ("ordered", ordered),
                                   ("reversed", Array(ordered.reversed())), ("equal", [Double](repeating: 7, count: n)),
                                   ("organ pipe", ordered.map { min($0, Double(n) - $0) })] {
                var a = values
                let m = RobustTrend.median(&a)
                if m != Self.sorted(values) { mismatches.append("\(name), n = \(n): \(m) ≠ \(Self.sorted(values))") }
                #expect(a.sorted() == values.sorted(), "\(name), n = \(n): values lost or changed")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    @Test("selection puts the k-th value in place, none greater before it and none smaller after it")
    func selectionPartitions() {
        var noise = TestNoise(state: 0x9E37_79B9_7F4A_7C15)
        for n in [2, 3, 10, 61, 1_770] {
            let values = (0..<n).map { _ in Double(Int(noise.next() * 50)) }
            for k in Set([0, n / 2, n - 1]) {
                var a = values
                RobustTrend.select(&a, k)
                #expect(a[k] == values.sorted()[k])
                #expect(a[..<k].allSatisfy { $0 <= a[k] } && a[(k + 1)...].allSatisfy { $0 >= a[k] })
            }
        }
    }
}
