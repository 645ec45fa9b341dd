/**
 * Connections this gateway opens to servers it does not run (export sinks, sync through a
 * site broker): TLS from PEM files, secrets from files, the loopback rule for plain
 * connections, and an MQTT client's login. One definition, so a sink and a sync broker take
 * the same `username` / `passwordFile` / `tls` and mean the same by them.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const tlsSchema = z
  .object({
    /** CA certificate(s) (PEM file) that the server's certificate must chain to; default: the system's. */
    ca: z.string().min(1).optional(),
    /** Client certificate and key (PEM files) for mutual TLS. */
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** Server name to verify, if not the URL's host. */
    servername: z.string().min(1).optional(),
  })
  .strict();

export type TlsFiles = z.infer<typeof tlsSchema>;

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\]|::1)$/;

/** The URL's host is this machine (a plain connection there crosses no network). */
export const isLoopbackUrl = (url: string): boolean => {
  try {
    return LOOPBACK.test(new URL(url).hostname);
  } catch {
    return false;
  }
};

/** A secret from a file, trailing newline dropped. */
export const readSecret = (file: string | undefined): string | undefined =>
  file === undefined ? undefined : readFileSync(file, 'utf8').replace(/\r?\n$/, '');

/** TLS options from PEM files; the server's certificate is always verified. */
export function tlsOptions(t: TlsFiles | undefined): {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: true;
} {
  return {
    ...(t?.ca !== undefined && { ca: readFileSync(t.ca) }),
    ...(t?.cert !== undefined && { cert: readFileSync(t.cert) }),
    ...(t?.key !== undefined && { key: readFileSync(t.key) }),
    ...(t?.servername !== undefined && { servername: t.servername }),
    rejectUnauthorized: true,
  };
}

/** Where an MQTT client logs in: `mqtts://` or `mqtt://` host:port, and the broker's own credentials. */
export interface MqttLogin {
  readonly url: string;
  readonly username?: string;
  readonly tls?: TlsFiles;
}

/**
 * mqtt.js options for a login: username and password when given, TLS (files read now) on
 * an `mqtts://` URL. The password is read from its file by the caller, once.
 */
export const mqttLoginOptions = (
  login: MqttLogin,
  password: string | undefined,
): { username?: string; password?: string } & Partial<ReturnType<typeof tlsOptions>> => ({
  ...(login.username !== undefined && { username: login.username }),
  ...(password !== undefined && { password }),
  ...(login.url.startsWith('mqtts:') && tlsOptions(login.tls)),
});
