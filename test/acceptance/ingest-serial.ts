/**
 * The ingest acceptance suite's adapter for serial: one real pty pair (socat) per device, the gateway's
 * serial transport on one end, a firmware-sim `SerialDeviceLink` on the other; frame-acks are
 * signed by the gateway and checked by the device against the gateway's key. Going away is
 * the adapter unplugged: socat ends and both pty nodes disappear, then come back under the
 * same names.
 */
import { onTestFinished } from 'vitest';
import { SerialDeviceLink } from '../../firmware-sim/transports/serial.js';
import { encodeSerialFrame } from '../../protocols/index.js';
import { running, startScopedGateway, testTempDir, waitFor } from '../helpers/env.js';
import { testPty } from '../helpers/pty.js';
import { needs } from '../helpers/system-tools.js';
import type { AttachedDevice, IngestAdapter } from './ingest.suite.js';

export const serialIngest: IngestAdapter = {
  transport: 'serial',
  options: needs('socat'),
  async start(fleet) {
    const dir = testTempDir('outpost-acc-serial-');
    const ptys = await Promise.all(fleet.devices.map((d) => testPty(dir, `${d.id}-gw`, `${d.id}-dev`)));
    const { gw, lines } = await startScopedGateway([...fleet.enrolment], {
      serial: {
        ports: fleet.devices.map((d, i) => ({ path: ptys[i]!.a, device: d.id })),
        reconnectMinMs: 50,
        reconnectMaxMs: 200,
      },
    });
    const links = fleet.devices.map((device, i) => {
      const link = new SerialDeviceLink(device, {
        path: ptys[i]!.b,
        gatewayPublicKey: gw.identity.publicKey,
        gatewayId: gw.config.gateway.id,
        resendAfterMs: 500,
        reopenMs: 50,
      });
      link.start();
      onTestFinished(() => link.stop());
      return link;
    });
    const serial = running(gw, 'serial');
    const open = (i: number): boolean => links[i]!.connected && serial.links[i]!.isOpen;
    await waitFor(() => links.every((_, i) => open(i)), 10_000, 'both ends of every pty open');
    const devices = links.map(
      (link, i): AttachedDevice => ({
        device: link.device,
        send: (f) => link.send(f),
        sendRaw: async (bytes) => link.writeRaw(encodeSerialFrame(bytes)),
        drain: (ms) => link.drain(ms),
        // An ack without the gateway's signature would count as unverified (or be refused outright).
        acks: () => ({ settled: link.stats.acked, refused: link.stats.badDownlink + link.stats.unverifiedAcks }),
        async goAway() {
          await ptys[i]!.unplug();
          // Both ends notice the line is gone before it comes back (else a stale open would pass for a reopen).
          await waitFor(
            () => !link.connected && !serial.links[i]!.isOpen,
            10_000,
            `${link.device.id}: both ends see the unplug`,
          );
        },
        async comeBack() {
          await ptys[i]!.plug();
          await waitFor(() => open(i), 10_000, `${link.device.id}: both ends open again`);
        },
      }),
    );
    return { gw, lines, devices };
  },
};
