/**
 * Figures the multihost scenarios measure on the way (convergence, detection, throughput),
 * printed as one line each so a run's log carries them; the assertions never depend on them.
 */
export function figure(label: string, value: number, unit: string): void {
  console.log(`[multihost figure] ${label}: ${Math.round(value)} ${unit}`);
}
