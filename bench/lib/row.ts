/** One row of a bench's results file, `bench/results/<name>.json` (bench/README.md, "Writing a bench"). */
export interface Row {
  figure: string;
  value: number;
  unit: string;
  baseline?: string;
  baselineValue?: number;
  ratio?: number;
  goal?: string;
  pass?: boolean;
}
