"""Reports: tables first (DataFrames that tests check), then plotly figures that only draw them."""
